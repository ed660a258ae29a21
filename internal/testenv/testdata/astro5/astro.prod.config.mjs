import { defineConfig } from 'astro/config'
import node from '@astrojs/node'

// The production build that vitehost runs (astro build --config
// astro.prod.config.mjs): server-rendered pages and the node adapter's
// standalone server, dist/server/entry.mjs. The dev server uses
// astro.config.mjs, without an adapter.
export default defineConfig({
  output: 'server',
  adapter: node({ mode: 'standalone' }),
})
