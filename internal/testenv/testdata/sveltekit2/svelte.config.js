// No adapter: the dev server needs none, and the fixture stays small.
export default {}
