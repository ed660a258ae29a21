import { Button } from "@/components/ui/button";
import { Sparkles } from "lucide-react";

const Index = () => {
  return (
    <div className="min-h-screen flex items-center justify-center bg-background">
      <div className="text-center">
        <h1 id="title" className="text-4xl font-bold mb-4 text-primary">Welcome to Your Blank App</h1>
        <p className="text-xl text-muted-foreground">Start building your amazing project here!</p>
        <Button id="cta"><Sparkles /> Get started</Button>
      </div>
    </div>
  );
};

export default Index;
