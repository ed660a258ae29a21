import { useEffect, useState } from 'react'
import { greet } from './greeting.js'

// A client route: /about is drawn by this component, never by a server.
export default function App() {
  const [path, setPath] = useState(location.pathname)
  const [api, setApi] = useState('')
  const [lazy, setLazy] = useState('')
  useEffect(() => {
    const onPop = () => setPath(location.pathname)
    addEventListener('popstate', onPop)
    fetch('/api/hello').then((r) => r.json()).then((j) => setApi(j.message), () => setApi('no API'))
    return () => removeEventListener('popstate', onPop)
  }, [])
  const go = (to) => (e) => {
    e.preventDefault()
    history.pushState(null, '', to)
    setPath(to)
  }
  const loadLazy = () => import('./lazy.js').then((m) => setLazy(m.lazyText()))
  return (
    <main>
      <h1 id="title">{greet('built SPA')}</h1>
      <nav>
        <a id="home-link" href="/" onClick={go('/')}>home</a>{' '}
        <a id="about-link" href="/about" onClick={go('/about')}>about</a>
      </nav>
      <p id="route">{path === '/about' ? 'about page' : 'home page'}</p>
      <p id="api">{api}</p>
      <button id="lazy" onClick={loadLazy}>load lazy</button>
      <p id="lazy-text">{lazy}</p>
    </main>
  )
}
