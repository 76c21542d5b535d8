// Starts `writ lsp` for `.writ` files; everything else is the server's.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const command = vscode.workspace.getConfiguration("writ").get("path") || "writ";
  client = new LanguageClient(
    "writ",
    "writ",
    { command, args: ["lsp"] },
    { documentSelector: [{ scheme: "file", language: "writ" }] }
  );
  context.subscriptions.push(client);
  return client.start().catch((error) => {
    vscode.window.showErrorMessage(
      `writ: cannot start \`${command} lsp\` (${error.message}); set "writ.path" to the writ binary`
    );
  });
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
