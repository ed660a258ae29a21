import './greeting.css'
import { format } from './format.js'

export function greet(who) {
  return format(`Hello from the ${who}`)
}
