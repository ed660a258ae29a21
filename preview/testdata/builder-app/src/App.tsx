import { Title } from "@/components/Title";

declare const __APP_MODE__: string;

export default function App() {
  return (
    <main className="min-h-screen p-8">
      <Title>Brand new app</Title>
      <p id="mode">{typeof __APP_MODE__ === "string" ? __APP_MODE__ : "no vite.config"}</p>
    </main>
  );
}
