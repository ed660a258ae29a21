export default function Island() {
  return <p id="island-text">React island of a Go page</p>
}
