import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// The build goes into the Go http package, which embeds it (http/ui.go).
export default defineConfig({
  plugins: [react()],
  build: {
    outDir: "../http/uidist/app",
    emptyOutDir: true,
    chunkSizeWarningLimit: 1500,
  },
  worker: { format: "es" },
  server: {
    proxy: { "/api": "http://127.0.0.1:8080" },
  },
});
