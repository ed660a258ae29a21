import { createRootRoute, Link, Outlet } from '@tanstack/react-router'

export const Route = createRootRoute({
  component: () => (
    <>
      <div className="nav">
        <Link to="/">Home</Link>
      </div>
      <hr />
      <Outlet />
    </>
  ),
})
