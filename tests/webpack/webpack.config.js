// webpack-dev-server with its defaults (hot reload on, allowedHosts
// "auto"); the tests give the port and the websocket URL on the command line.
const path = require('path');

module.exports = {
  mode: 'development',
  entry: './src/index.js',
  output: { path: path.resolve(__dirname, 'dist'), filename: 'main.js' },
  devServer: { static: path.resolve(__dirname, 'public') },
  infrastructureLogging: { level: 'info' },
};
