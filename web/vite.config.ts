// The console is built into crates/crossrole-server/console, which crossroled embeds (include_bytes!) and serves
// under /console/. Fixed file names: the embedded set is known at compile time, and a rebuild that changes nothing
// changes no file (the drift check compares them).
import { defineConfig } from "vite";

export default defineConfig({
  base: "/console/",
  // `npx vite` serves the page with reloads; its API calls go to the crossroled at CROSSROLED (plaintext).
  server: {
    proxy: { "^/crossrole\\.v1\\..*": { target: process.env.CROSSROLED ?? "http://127.0.0.1:50051", changeOrigin: true } },
  },
  build: {
    outDir: "../crates/crossrole-server/console",
    emptyOutDir: true,
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    rollupOptions: {
      output: {
        entryFileNames: "assets/app.js",
        chunkFileNames: "assets/[name].js",
        assetFileNames: "assets/[name][extname]",
      },
    },
  },
});
