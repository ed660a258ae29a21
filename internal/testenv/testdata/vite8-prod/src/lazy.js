import './lazy.css'

export function lazyText() {
  return 'lazy module loaded'
}
