import { defineConfig } from 'vite'
import react from '@vitejs/plugin-react'

// Four entries whose manifest has what a backend integration must handle:
// chunks that import chunks (greeting.js -> format.js), a CSS-only entry
// (theme.css), a dynamic import (lazy.js) and an asset (logo.svg).
export default defineConfig({
  plugins: [react()],
  build: {
    assetsInlineLimit: 0,
    rolldownOptions: {
      input: ['index.html', 'src/server-rendered.jsx', 'src/other.js', 'src/theme.css'],
    },
  },
})
