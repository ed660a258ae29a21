import './format.css'
import logo from './logo.svg'

export const logoURL = logo

export function format(text) {
  return text
}
