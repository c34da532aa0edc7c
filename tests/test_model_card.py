"""The model card's pieces that need no pipeline run (the card of real runs: test_pipeline_e2e.py)."""
import pytest

from run_results import model_card


@pytest.mark.parametrize('right, total, expected', [
    (17, 17, (0.816, 1.0)),  # the sample's test split, all right: still only >= 0.82
    (219, 224, (0.949, 0.990)),  # the real test split at 0.978
    (0, 10, (0.0, 0.278)),
])
def test_wilson_interval(right, total, expected):
  low, high = model_card.wilson_interval(right, total)
  assert (round(low, 3), round(high, 3)) == expected


def test_markdown_tables_have_a_separator_per_column():
  lines = model_card._table(['split', 'cats', 'dogs'], [['train', 60, 60]])  # pylint: disable=protected-access
  assert lines[:3] == ['| split | cats | dogs |', '|---|---|---|', '| train | 60 | 60 |']
