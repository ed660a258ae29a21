import { useEffect, useState } from 'react'
import { useLoaderData } from 'react-router'
import { message } from '../message.server.js'

export function loader() {
  return { message }
}

export default function Home() {
  const data = useLoaderData()
  const [api, setApi] = useState('loading')
  useEffect(() => {
    fetch('/api/hello')
      .then((res) => (res.ok ? res.json() : { message: 'no api' }))
      .then((body) => setApi(body.message))
      .catch(() => setApi('no api'))
  }, [])
  return (
    <main>
      <h1 id="title">Hello from React Router</h1>
      <p id="server">{data.message}</p>
      <p id="api">{api}</p>
    </main>
  )
}
