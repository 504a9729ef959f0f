// The sandboxed processor of the queue bench: /bin/true through child_process.
const { execFile } = require('node:child_process');

module.exports = () =>
  new Promise((resolve, reject) => {
    execFile('/bin/true', (error) => (error ? reject(error) : resolve(0)));
  });
