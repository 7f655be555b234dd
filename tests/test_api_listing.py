"""The README's list of what fastdl offers is the code's (tests/api_listing.py makes it)."""

from pathlib import Path

from api_listing import listing, readme_block

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_lists_exactly_what_the_code_offers():
    block = readme_block(README.read_text())
    assert block is not None, "README.md lost its <!-- api:begin --> ... <!-- api:end --> block"
    assert block == listing(), (
        "README.md's list of what fastdl offers is stale: run "
        "`python tests/api_listing.py --write README.md`"
    )
