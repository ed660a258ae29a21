import { message } from '$lib/server/message.js'

export function load() {
  return { message }
}
