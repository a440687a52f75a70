"""Knowledge packs: reading sources, chunking with line spans, the incremental FTS5 index,
retrieval quality on a corpus with known answers, the CLI and the agent's search tool."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from afctl.context import Context
from afctl.errors import UsageError
from afctl.knowledge.chunk import chunk_text
from afctl.knowledge.index import KnowledgeIndex, fts_query
from afctl.knowledge.ingest import as_text, find_sources
from afctl.testing import invoke, write_repo

GUIDE = """# Guide

Intro line.

## Install

Run pip install afctl.
Then run afctl init.

## Configure

### Models

Set OPENAI_API_KEY before using openai models.

```
# not a heading: inside a code fence
```
"""


def test_markdown_chunks_know_their_heading_path_and_lines():
    lines = GUIDE.splitlines()
    chunks = chunk_text(GUIDE, "markdown", size=200, overlap=0)
    headings = [c.heading for c in chunks]
    assert headings == [
        "Guide",
        "Guide > Install",
        "Guide > Configure",
        "Guide > Configure > Models",
    ]
    for chunk in chunks:
        assert chunk.text == "\n".join(lines[chunk.start_line - 1 : chunk.end_line]).strip()
    models = chunks[-1]
    assert "OPENAI_API_KEY" in models.text and "# not a heading" in models.text


@settings(max_examples=60)
@given(
    st.lists(st.text(alphabet="abc #\n", max_size=80), max_size=40).map("\n".join),
    st.sampled_from(["markdown", "fixed"]),
    st.integers(50, 400),
    st.integers(0, 100),
)
def test_chunks_cover_every_line_and_respect_the_size(text, strategy, size, overlap):
    lines = text.splitlines()
    chunks = chunk_text(text, strategy, size, overlap)
    covered = set()
    for chunk in chunks:
        assert 1 <= chunk.start_line <= chunk.end_line <= len(lines)
        span = lines[chunk.start_line - 1 : chunk.end_line]
        assert chunk.text == "\n".join(span).strip()
        assert len("\n".join(span)) <= size or chunk.start_line == chunk.end_line
        covered.update(range(chunk.start_line, chunk.end_line + 1))
    for number, line in enumerate(lines, start=1):
        if line.strip():
            assert number in covered


def test_other_formats_become_text():
    assert "Berlin" in as_text("a.html", b"<p>Office:\n<b>Berlin</b></p><script>x()</script>")
    assert "x()" not in as_text("a.html", b"<p>Office</p><script>x()</script>")
    assert as_text("a.json", b'{"a": [1]}') == '{\n  "a": [\n    1\n  ]\n}'
    assert as_text("a.csv", b"sku,price\nA1,3\n") == "sku, price\nsku: A1; price: 3"


def test_sources_stay_in_the_repository(tmp_path):
    write_repo(
        tmp_path, {"docs/a.md": "a", "docs/b.txt": "b", "docs/c.png": "x", "docs/old/d.md": "d"}
    )
    found = find_sources([{"path": "docs/**/*", "exclude": ["docs/old/*"]}], tmp_path)
    assert [s.path for s in found] == ["docs/a.md", "docs/b.txt"]
    with pytest.raises(UsageError, match="inside the repository"):
        list(find_sources([{"path": "../**/*.md"}], tmp_path))


def test_builds_are_incremental_and_follow_the_settings(tmp_path):
    write_repo(tmp_path, {"docs/a.md": "# A\nalpha words", "docs/b.md": "# B\nbeta words"})
    spec = {"sources": [{"path": "docs/*.md"}]}
    with KnowledgeIndex.open(tmp_path / ".afctl") as index:
        first = index.build("docs", spec, tmp_path)
        assert (first.files, first.indexed, first.unchanged, first.removed) == (2, 2, 0, 0)
        again = index.build("docs", spec, tmp_path)
        assert (again.indexed, again.unchanged) == (0, 2)
        (tmp_path / "docs/a.md").write_text("# A\ngamma words")
        (tmp_path / "docs/b.md").unlink()
        changed = index.build("docs", spec, tmp_path)
        assert (changed.indexed, changed.unchanged, changed.removed) == (1, 0, 1)
        assert index.search("docs", "alpha") == [] and index.search("docs", "beta") == []
        assert [h.path for h in index.search("docs", "gamma")] == ["docs/a.md"]
        resized = index.build("docs", {**spec, "chunking": {"size": 60}}, tmp_path)
        assert resized.indexed == 1  # other settings: the pack is rebuilt
        with pytest.raises(UsageError, match="no index yet"):
            index.search("other", "gamma")


@given(st.text(max_size=100))
def test_any_question_is_a_safe_query(question):
    query = fts_query(question)
    assert query is None or all(part.startswith('"') for part in query.split(" OR "))


CORPUS = {
    "docs/shipping.md": "# Shipping\n\n## Delivery times\nParcels arrive within 3 to 5 business days in Europe.\n\n## Carriers\nWe ship with DHL and UPS. Tracking numbers are emailed.\n",
    "docs/returns.md": "# Returns\n\n## Return window\nYou may return items within 30 days of delivery.\n\n## Refunds\nRefunds are paid to the original payment method within 10 days.\n",
    "docs/account.md": "# Account\n\n## Password reset\nUse the forgot password link on the login page to reset your password.\n\n## Two-factor authentication\nEnable 2FA in security settings with an authenticator app.\n",
    "docs/billing.md": "# Billing\n\n## Invoices\nInvoices are available as PDF in the billing section.\n\n## VAT\nPrices include VAT for customers in the European Union.\n",
    "docs/products.md": "# Products\n\n## Warranty\nAll devices carry a two year warranty against defects.\n\n## Batteries\nBatteries are covered for one year.\n",
    "docs/contact.md": "# Contact\n\n## Phone support\nCall support Monday to Friday from 9 to 17.\n\n## Office\nOur office is in Berlin, Germany.\n",
}
QUESTIONS = {
    "how long does delivery take": "docs/shipping.md",
    "which carriers do you use for shipping": "docs/shipping.md",
    "can I return an item after 20 days": "docs/returns.md",
    "when will my refund be paid": "docs/returns.md",
    "I forgot my password": "docs/account.md",
    "how do I enable two-factor authentication": "docs/account.md",
    "where can I download my invoice": "docs/billing.md",
    "do prices include VAT": "docs/billing.md",
    "what warranty do devices have": "docs/products.md",
    "where is your office": "docs/contact.md",
}


def test_retrieval_finds_the_known_answers(tmp_path):
    write_repo(tmp_path, CORPUS)
    with KnowledgeIndex.open(tmp_path / ".afctl") as index:
        index.build(
            "help", {"sources": [{"path": "docs/*.md"}], "chunking": {"size": 120}}, tmp_path
        )
        found = sum(
            1 for question, answer in QUESTIONS.items()
            if answer in [h.path for h in index.search("help", question, k=5)]
        )  # fmt: skip
        first = sum(
            1 for question, answer in QUESTIONS.items()
            if index.search("help", question, k=1)[0].path == answer
        )  # fmt: skip
    recall = found / len(QUESTIONS)
    assert recall >= 0.9 and first / len(QUESTIONS) >= 0.7, (recall, first / len(QUESTIONS))


PACK = (
    "apiVersion: afctl/v1\nkind: KnowledgePack\nmetadata: {name: help, description: Help center}\n"
    "spec: {sources: [{path: 'docs/*.md'}], chunking: {size: 120}, retrieval: {top_k: 3}}\n"
)


def test_the_cli_builds_and_queries_and_apply_keeps_the_index_fresh(tmp_path):
    repo = write_repo(tmp_path, {**CORPUS, "pack.yaml": PACK, ".afctl/.gitignore": "*\n"})
    built = invoke(["knowledge", "build", "help", "-f", "pack.yaml"], cwd=repo)
    assert built.exit_code == 0, built.stderr
    assert "6 files (6 indexed, 0 unchanged, 0 removed)" in built.stdout
    hits = json.loads(invoke(["knowledge", "query", "help", "where is your office", "-f", "pack.yaml",
                              "-o", "json"], cwd=repo).stdout)  # fmt: skip
    assert len(hits) <= 3 and hits[0]["source"].startswith("docs/contact.md:")
    assert "Berlin" in hits[0]["text"]
    text = invoke(["knowledge", "query", "help", "VAT", "-f", "pack.yaml", "-k", "1"], cwd=repo)
    assert text.stdout.startswith("docs/billing.md:") and "Billing > VAT" in text.stdout
    missing = invoke(["knowledge", "query", "nope", "x", "-f", "pack.yaml"], cwd=repo)
    assert missing.exit_code == 64 and "knowledgepack/nope is not defined" in missing.stderr
    assert invoke(["apply", "-f", "pack.yaml", "--yes"], cwd=repo).exit_code == 0
    (repo / "docs/contact.md").write_text("# Contact\n\n## Office\nWe moved to Hamburg.\n")
    applied = invoke(["apply", "-f", "pack.yaml", "--yes"], cwd=repo)  # no manifest change
    assert "knowledge/help: indexed 1 changed files" in applied.stdout
    hits = Context(workspace=repo / ".afctl").knowledge_query("help", "office")
    assert "Hamburg" in hits[0].text


def test_an_agent_searches_its_knowledge_pack(tmp_path):
    repo = write_repo(
        tmp_path,
        {
            **CORPUS,
            "pack.yaml": PACK,
            "model.yaml": (
                "apiVersion: afctl/v1\nkind: Model\nmetadata: {name: script}\n"
                "spec:\n  provider: local\n  model: scripted\n  script:\n    rules:\n"
                "      - turn: 1\n        tool_calls: [{name: search_help, arguments: {query: '{{ input }}', k: 1}}]\n"
                "      - after_tool: search_help\n        reply: '{{ tool_result }}'\n"
            ),
            "agent.yaml": (
                "apiVersion: afctl/v1\nkind: Agent\nmetadata: {name: helper}\n"
                "spec: {model: script, instructions: Answer from the help center., knowledge: [help]}\n"
            ),
        },
    )  # fmt: skip
    result = Context(workspace=repo / ".afctl").run(
        "agent/helper", "when will my refund be paid", paths=[str(repo)]
    )
    assert result.ok, result.error
    assert (result.output or "").startswith("[docs/returns.md:")
    assert "Returns > Refunds" in (result.output or "")
    assert "original payment method" in (result.output or "")
    with Context(workspace=repo / ".afctl").prompt_log() as log:
        first = next(iter(log.events(result.run_id)))
        offered = first.payload["request"]["tools"]
    assert offered[0]["name"] == "search_help" and "Help center" in offered[0]["description"]
    with Context(workspace=repo / ".afctl").prompt_log() as log:
        (retrieval,) = [e for e in log.events(result.run_id) if e.type == "retrieval"]
    assert retrieval.payload["pack"] == "help"
    assert retrieval.payload["query"] == "when will my refund be paid"
    assert retrieval.payload["hits"][0]["source"].startswith("docs/returns.md:")


def vector_pack(model: str, kind: str) -> str:
    return (
        "apiVersion: afctl/v1\nkind: KnowledgePack\nmetadata: {name: help}\n"
        "spec: {sources: [{path: 'docs/*.md'}], chunking: {size: 120}, "
        f"index: {{type: {kind}, embedding_model: {model}}}}}\n"
    )


@pytest.mark.parametrize("kind", ["embeddings", "hybrid"])
def test_embeddings_and_hybrid_indexes_find_the_known_answers(tmp_path, kind):
    repo = write_repo(tmp_path, {**CORPUS, "pack.yaml": vector_pack("local/hashing", kind)})
    context = Context(workspace=repo / ".afctl")
    report = context.knowledge_build("help", paths=[str(repo / "pack.yaml")])
    with KnowledgeIndex.open(repo / ".afctl") as index:
        vectors = index.conn.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]
    assert vectors == report.chunks  # every chunk has its vector
    found = sum(
        1 for question, answer in QUESTIONS.items()
        if answer in [h.path for h in context.knowledge_query(
            "help", question, k=5, paths=[str(repo / "pack.yaml")])]
    )  # fmt: skip
    assert found / len(QUESTIONS) >= 0.8, f"{kind} recall@5 = {found / len(QUESTIONS):.2f}"


def test_embeddings_come_from_the_provider_through_its_sdk(tmp_path, llm_server, monkeypatch):
    monkeypatch.setenv("EMBED_KEY", "sk-embed-key-0000000000000000000000")
    model = (
        "apiVersion: afctl/v1\nkind: Model\nmetadata: {name: embedder}\n"
        f"spec: {{provider: openai, model: text-embedding-3-small, base_url: '{llm_server.url}/v1', "
        "api_key_env: EMBED_KEY}\n"
    )
    repo = write_repo(
        tmp_path, {**CORPUS, "pack.yaml": vector_pack("embedder", "embeddings"), "m.yaml": model}
    )
    context = Context(workspace=repo / ".afctl")
    built = context.knowledge_build("help", paths=[str(repo)])
    requests = [r for r in llm_server.requests if r.path == "/v1/embeddings"]
    assert len(requests) == 1 and len(requests[0].body["input"]) == built.chunks  # one batch
    assert requests[0].headers["authorization"] == "Bearer sk-embed-key-0000000000000000000000"
    hits = context.knowledge_query("help", "where is your office", paths=[str(repo)])
    assert hits[0].path == "docs/contact.md"
    assert len([r for r in llm_server.requests if r.path == "/v1/embeddings"]) == 2  # the question
    (repo / "docs/contact.md").write_text("# Contact\n\n## Office\nWe moved to Hamburg.\n")
    context.knowledge_build("help", paths=[str(repo)])
    last = [r for r in llm_server.requests if r.path == "/v1/embeddings"][-1]
    assert len(last.body["input"]) == 2  # only the changed file's chunks are embedded again


def test_a_model_without_embeddings_is_refused_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-not-used")
    pack = vector_pack("anthropic/claude-haiku-4-5", "hybrid")
    repo = write_repo(tmp_path, {**CORPUS, "pack.yaml": pack})
    with pytest.raises(UsageError, match="cannot make embeddings"):
        Context(workspace=repo / ".afctl").knowledge_build("help", paths=[str(repo)])


def test_the_index_has_numbered_migrations_and_takes_an_index_made_before_them(tmp_path):
    import sqlite3

    from afctl.knowledge.index import KnowledgeIndex

    old = tmp_path / "old.db"
    with sqlite3.connect(old) as connection:  # as afctl made it before migrations
        connection.executescript(
            "CREATE TABLE packs (name TEXT PRIMARY KEY, settings TEXT, built_at TEXT);"
            "INSERT INTO packs VALUES ('docs', '{}', 'then');"
        )
    index = KnowledgeIndex(old)
    try:
        applied = [r[0] for r in index.conn.execute("SELECT name FROM _sqlite_migrations")]
        kept = index.conn.execute("SELECT name FROM packs").fetchall()
    finally:
        index.close()
    assert applied == ["0001_initial"] and kept == [("docs",)]
