export default function App() {
  return (
    <main>
      <h1>Your preview is running</h1>
      <p>Send src/App.tsx to replace this page.</p>
    </main>
  )
}
