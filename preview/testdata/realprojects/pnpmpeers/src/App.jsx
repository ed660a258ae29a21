export default function App() {
  return <h1 id="title" className="title">Made with pnpm</h1>
}
