import type { ReactNode } from "react";

export function Title({ children }: { children: ReactNode }) {
  return (
    <h1 id="title" className="text-3xl font-bold text-brand">
      {children}
    </h1>
  );
}
