/// <reference types="vitest/config" />
import { fileURLToPath, URL } from 'node:url'
import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'
import Components from 'unplugin-vue-components/vite'
import { AntDesignVueResolver } from 'unplugin-vue-components/resolvers'

// The dev server proxies the API and the websocket to a running `gridfleet serve` (default port 8765).
const backend = process.env.GRIDFLEET_BACKEND ?? 'http://127.0.0.1:8765'

export default defineConfig({
  plugins: [
    vue(),
    // Ant Design Vue components are imported per component where a template uses them (<a-button> etc.).
    Components({
      dts: 'src/components.d.ts',
      dirs: [], // our own components are imported explicitly
      resolvers: [AntDesignVueResolver({ importStyle: false, resolveIcons: true })],
    }),
  ],
  resolve: {
    alias: { '@': fileURLToPath(new URL('./src', import.meta.url)) },
  },
  server: {
    proxy: {
      '/api': { target: backend, changeOrigin: false },
      '/ws': { target: backend.replace(/^http/, 'ws'), ws: true },
    },
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    chunkSizeWarningLimit: 1500,
    rolldownOptions: {
      output: {
        codeSplitting: {
          groups: [
            { name: 'echarts', test: /node_modules[\\/](echarts|zrender|vue-echarts)/ },
            { name: 'antd', test: /node_modules[\\/](ant-design-vue|@ant-design|dayjs|@ctrl|lodash-es)/ },
            { name: 'vue', test: /node_modules[\\/](vue|@vue|vue-router|pinia|vue-i18n|@intlify)[\\/]/ },
          ],
        },
      },
    },
  },
  test: {
    environment: 'happy-dom',
    include: ['tests/**/*.spec.ts', 'src/**/*.spec.ts'],
    restoreMocks: true,
  },
})
