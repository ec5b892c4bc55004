"""eval.quality_failures: the quality gate the refresh workflow publishes behind."""
from faq_bot.eval import quality_failures

METRICS = {"answer@evidence": 0.75, "abstention": 1.0, "false_abstention": 0.04}


def test_metrics_within_their_limits_pass():
    assert quality_failures(METRICS, {"answer@evidence": 0.75, "abstention": 0.8}, {"false_abstention": 0.04}) == []


def test_each_shortfall_is_named():
    assert quality_failures(METRICS, {"answer@evidence": 0.8}, {"false_abstention": 0.03}) == [
        "answer@evidence 0.750 is below the floor 0.800", "false_abstention 0.040 is above the ceiling 0.030"]


def test_a_metric_the_questions_cannot_give_fails():
    assert quality_failures({"answer@evidence": 1.0}, {"abstention": 0.8}, {}) == [
        "abstention: not measured by this question file"]
