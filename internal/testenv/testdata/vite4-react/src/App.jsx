import { useState } from 'react'

export default function App() {
  const [count, setCount] = useState(0)
  return (
    <main>
      <h1 id="title">Hello from the fixture</h1>
      <button id="counter" onClick={() => setCount((c) => c + 1)}>count is {count}</button>
    </main>
  )
}
