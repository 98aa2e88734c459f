// Edited by tests/e2e/test_devservers.py (on a copy) to trigger hot reload.
document.querySelector('#app').textContent = 'Hello from Vite through expose'

if (import.meta.hot) {
  import.meta.hot.accept()
}
