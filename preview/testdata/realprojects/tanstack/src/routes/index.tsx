import { createFileRoute } from '@tanstack/react-router'

export const Route = createFileRoute('/')({
  component: Index,
})

function Index() {
  return (
    <div className="home">
      <h3 id="title">Welcome Home!</h3>
    </div>
  )
}
