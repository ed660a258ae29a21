// The entry of the page that Go renders with html/template: its tags come
// from the manifest in production and from the dev server in development.
import { createRoot } from 'react-dom/client'
import './server-rendered.css'
import { greet } from './greeting.js'
import Island from './Island.jsx'

document.querySelector('#script').textContent = greet('script of a Go page')
createRoot(document.getElementById('island')).render(<Island />)
