import { Rocket } from 'lucide-react';

function App() {
  return (
    <div className="min-h-screen bg-gray-100 flex items-center justify-center">
      <div className="bg-white p-8 rounded-lg shadow-md">
        <h1 id="title" className="text-3xl font-bold text-indigo-600 flex items-center gap-2">
          <Rocket className="w-8 h-8" /> Start prompting (or editing) to see magic happen :)
        </h1>
      </div>
    </div>
  );
}

export default App;
