// Accepts its own updates: an edit is run again in the page, no reload.
document.getElementById('message').textContent = 'Hello from webpack through expose';
if (module.hot) module.hot.accept();
