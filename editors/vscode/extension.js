// Starts `writ lsp` for `.writ` files; everything else is the server's.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const command = vscode.workspace.getConfiguration("writ").get("path") || "writ";
  // A quick fix that leaves something to write (a waiver's reason) carries
  // this command, run here after its edit: the cursor goes there. The
  // server sends it only to an editor that says it runs it.
  context.subscriptions.push(
    vscode.commands.registerCommand("writ.placeCursor", (uri, position) => {
      // The server names the document as this editor did; compared in
      // VS Code's own spelling. The active editor first (a document open
      // in two split editors).
      const target = vscode.Uri.parse(uri).toString();
      const editors = [vscode.window.activeTextEditor, ...vscode.window.visibleTextEditors];
      const editor = editors.find((e) => e && e.document.uri.toString() === target);
      if (!editor || !position) {
        return;
      }
      const at = new vscode.Position(position.line, position.character);
      editor.selection = new vscode.Selection(at, at);
      editor.revealRange(new vscode.Range(at, at));
    })
  );
  client = new LanguageClient(
    "writ",
    "writ",
    { command, args: ["lsp"] },
    {
      documentSelector: [{ scheme: "file", language: "writ" }],
      initializationOptions: { placeCursor: true },
    }
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
