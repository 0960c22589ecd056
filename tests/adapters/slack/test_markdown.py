from adapters.slack.markdown import to_mrkdwn


def test_common_markdown_becomes_mrkdwn() -> None:
    md = "# Plan\n**Bold** and *italic* and ~~gone~~, see [the doc](https://x.io/a?b=1).\n- item <3 & more"
    assert to_mrkdwn(md) == (
        "*Plan*\n*Bold* and _italic_ and ~gone~, see <https://x.io/a?b=1|the doc>.\n- item &lt;3 &amp; more"
    )


def test_code_is_left_alone() -> None:
    md = "Run `a**b**c` then:\n```python\nx = 2 ** 3  # **not bold**\n```\n**done**"
    assert to_mrkdwn(md) == "Run `a**b**c` then:\n```python\nx = 2 ** 3  # **not bold**\n```\n*done*"
