"""What a run leaves behind: JSON records (``results``), the HTML page and Markdown summary (``report``), heatmaps
(``heatmap``), and standalone repro scripts for upstream bug reports (``repro``).
"""
