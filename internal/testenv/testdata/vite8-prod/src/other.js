import { format, logoURL } from './format.js'

document.body.dataset.other = format(logoURL)
