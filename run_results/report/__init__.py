"""The run report's parts: its sections, charts, HTML page, and the model's mistakes on the test split."""
