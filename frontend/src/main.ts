import { createApp } from 'vue'
import { createPinia } from 'pinia'
import 'ant-design-vue/dist/reset.css'
import './styles/global.css'
import App from './App.vue'
import { i18n } from './i18n'
import { createAppRouter } from './router'
import { usePreferencesStore } from './stores/preferences'

const app = createApp(App)
const pinia = createPinia()
app.use(pinia)
app.use(i18n)
usePreferencesStore(pinia) // applies the price-colour convention (CSS variables) before the first paint
app.use(createAppRouter())
app.mount('#app')
