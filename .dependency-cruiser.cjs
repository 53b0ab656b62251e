// The layering rules `npm test` enforces (dependency-cruiser): src/ is the library, backends/
// implement its contract, cli/ (commands, demo, experiments) sits above both; no cycles.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    { name: 'no-cycles', severity: 'error', comment: 'No file may import itself through others.',
      from: {}, to: { circular: true } },
    { name: 'library-below-backends', severity: 'error',
      comment: 'src/ is written against the contract only; backends are handed in.',
      from: { path: '^src/' }, to: { path: '^backends/' } },
    { name: 'library-below-cli', severity: 'error', comment: 'src/ never imports the CLI or the demo.',
      from: { path: '^src/' }, to: { path: '^cli/' } },
    { name: 'backends-below-cli', severity: 'error', comment: 'A backend never imports the CLI.',
      from: { path: '^backends/' }, to: { path: '^cli/' } },
    { name: 'no-tests-in-product', severity: 'error', comment: 'Shipped code never imports test helpers.',
      from: { path: '^(src|backends|cli|bin)/' }, to: { path: '^test/' } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    // Dynamic import() counts: a lazily loaded backend is still a dependency.
  },
};
