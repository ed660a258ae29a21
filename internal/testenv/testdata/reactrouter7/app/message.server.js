// A module only the server imports: an edit reaches the page through React
// Router's loader revalidation.
export const message = 'Rendered on the server'
