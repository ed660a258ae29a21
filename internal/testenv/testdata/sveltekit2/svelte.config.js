import adapter from '@sveltejs/adapter-node'

// adapter-node makes the production server (build/index.js) that vitehost
// runs; the dev server needs no adapter.
export default { kit: { adapter: adapter() } }
