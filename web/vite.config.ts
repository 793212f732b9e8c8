// The console is built into crates/crossrole-server/console, which crossroled embeds (include_bytes!) and serves
// under /console/. Fixed file names: the embedded set is known at compile time, and a rebuild that changes nothing
// changes no file (the drift check compares them).
import { defineConfig } from "vite";

export default defineConfig({
  base: "/console/",
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
