function App() {
  return (
    <main className="min-h-screen bg-slate-50 p-8">
      <h1 id="title" className="text-3xl font-bold text-brand underline">Hello Tailwind 4</h1>
    </main>
  )
}

export default App
