// A module only the server imports: an edit reaches the page through
// Astro's SSR module reload.
export const message = 'Rendered on the server'
