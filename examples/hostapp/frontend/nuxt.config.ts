// The Go host app (examples/hostapp) starts `nuxi dev` through the vite
// package, which adds the HMR port and the public address as a layer: this
// file needs nothing for it.
export default defineNuxtConfig({
  compatibilityDate: '2025-07-15',
  devtools: { enabled: false },
  telemetry: false,
})
