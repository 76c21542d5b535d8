"""`writ lsp` driven by an independent client, pytest-lsp (pygls), with the
capabilities real editors announce (Neovim 0.11, VS Code 1.65): pytest-lsp
checks every answer against what that client said it accepts.

Run by `tests/it/lsp.rs`, which installs pytest-lsp into `target/` and
names the binary in `WRIT_BIN`.
"""

import os
import pathlib
import tempfile

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

PROVIDERS = (
    'provider aws prod {\n  account = "123456789012"\n}\n\n'
    "/// Reads invoices.\nscope invoices {\n"
    '  aws.prod allow s3:GetObject on "arn:aws:s3:::acme-invoices/*"\n}\n'
)
AGENTS = (
    'agent billing_bot {\n  owner = "team-billing"\n  ttl = 1h\n'
    '  runs_on aws.prod service "lambda.amazonaws.com"\n  can invoices\n}\n'
)


def position(text: str, needle: str, plus: int = 0) -> types.Position:
    at = text.index(needle) + plus
    line = text[:at].count("\n")
    column = at - (text.rfind("\n", 0, at) + 1)
    return types.Position(line=line, character=column)


@pytest_lsp.fixture(
    config=ClientServerConfig(server_command=[os.environ["WRIT_BIN"], "lsp"]),
    params=["neovim@v0.11.0", "visual-studio-code"],
)
async def client(lsp_client: LanguageClient, request):
    root = pathlib.Path(tempfile.mkdtemp(prefix="writ-pytest-lsp-")).resolve()
    (root / "writ.toml").write_text('[project]\nname = "acme"\n')
    (root / "providers.writ").write_text(PROVIDERS)
    (root / "agents.writ").write_text(AGENTS)
    lsp_client.root = root

    # As the editors do: the server asks to be told of `.writ` files on
    # disk, where the client registers capabilities dynamically.
    @lsp_client.feature(types.CLIENT_REGISTER_CAPABILITY)
    def register(params: types.RegistrationParams):
        lsp_client.registered = [r.method for r in params.registrations]

    await lsp_client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities(request.param),
            root_uri=root.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name="acme")],
        )
    )
    yield
    await lsp_client.shutdown_session()


def uri(client: LanguageClient, name: str) -> str:
    return (client.root / name).as_uri()


def open_document(client: LanguageClient, name: str, text: str, version: int = 1):
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri(client, name), language_id="writ", version=version, text=text
            )
        )
    )


async def findings(client: LanguageClient, name: str, want_empty: bool):
    """Waits for the document's findings to be empty, or not."""
    for _ in range(50):
        found = client.diagnostics.get(uri(client, name))
        if found is not None and (len(found) == 0) == want_empty:
            return found
        await client.wait_for_notification("textDocument/publishDiagnostics")
    raise AssertionError(f"findings for {name}: {client.diagnostics.get(uri(client, name))}")


async def test_findings_appear_and_clear_with_the_quick_fix(client: LanguageClient):
    broken = AGENTS.replace(
        "  can invoices\n",
        '  can invoices\n  aws.prod allow s3:GetObjekt on "arn:aws:s3:::acme-invoices/*"\n',
    )
    open_document(client, "agents.writ", broken)
    found = await findings(client, "agents.writ", want_empty=False)
    assert [d.code for d in found] == ["writ::unknown_action"]
    assert "did you mean `s3:GetObject`?" in found[0].message
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri(client, "agents.writ")),
            range=found[0].range,
            context=types.CodeActionContext(diagnostics=list(found)),
        )
    )
    fix = next(a for a in actions if a.title.startswith("replace `s3:GetObjekt`"))
    (edit,) = fix.edit.changes[uri(client, "agents.writ")]
    fixed = broken.replace("s3:GetObjekt", edit.new_text)
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(
                uri=uri(client, "agents.writ"), version=2
            ),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=fixed)],
        )
    )
    await findings(client, "agents.writ", want_empty=True)


async def test_hover_and_definition_across_files(client: LanguageClient):
    open_document(client, "agents.writ", AGENTS)
    hover = await client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri(client, "agents.writ")),
            position=position(AGENTS, "billing_bot", 2),
        )
    )
    assert "through scope `invoices`" in hover.contents.value
    definition = await client.text_document_definition_async(
        types.DefinitionParams(
            text_document=types.TextDocumentIdentifier(uri=uri(client, "agents.writ")),
            position=position(AGENTS, "can invoices", 6),
        )
    )
    assert definition.uri == uri(client, "providers.writ")
    assert definition.range.start == position(PROVIDERS, "scope invoices", 6)


async def test_completion_offers_the_catalogues_actions(client: LanguageClient):
    typing = AGENTS.replace("  can invoices\n", "  can invoices\n  aws.prod allow s3:GetOb\n")
    open_document(client, "agents.writ", typing)
    items = await client.text_document_completion_async(
        types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri(client, "agents.writ")),
            position=position(typing, "s3:GetOb", len("s3:GetOb")),
        )
    )
    labels = [i.label for i in (items.items if hasattr(items, "items") else items)]
    assert "s3:GetObject" in labels


async def test_formatting_is_writ_fmt(client: LanguageClient):
    messy = AGENTS.replace("  ttl = 1h", "    ttl =   1h").replace("agent billing_bot", "agent   billing_bot")
    open_document(client, "agents.writ", messy)
    edits = await client.text_document_formatting_async(
        types.DocumentFormattingParams(
            text_document=types.TextDocumentIdentifier(uri=uri(client, "agents.writ")),
            options=types.FormattingOptions(tab_size=2, insert_spaces=True),
        )
    )
    assert len(edits) == 1 and edits[0].new_text == AGENTS
