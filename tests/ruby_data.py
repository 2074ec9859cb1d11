"""Where the Ruby ground truth lives (importable from any test; conftest modules are not)."""

from pathlib import Path

TESTS = Path(__file__).resolve().parent
RUBY_FIXTURES = TESTS / "data" / "ruby-scout"
SHARED_FIXTURES = TESTS.parent.parent / "shared" / "fixtures"
