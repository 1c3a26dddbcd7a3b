// The timeline as a self-contained SVG: stacked bars per bucket, lines at the signal and at the
// exit, axes, a legend and a title with the headline counts. Written by hand as text so that
// the drill needs no charting library, and sized for 900×400, where a reader sees at a glance
// whether anything but green happened around the line marked SIGTERM.

enum SVGChart {
    /// One stacked class: its label in the legend and its fill.
    struct Series: Sendable {
        var label: String
        var color: String
        var value: @Sendable (BucketCounts) -> Int
    }

    /// Bottom to top: the successes, then the failure classes in warning colours, refused (no
    /// request was sent; the listener was closed) in grey on top.
    static let series: [Series] = [
        Series(label: "ok (kept alive)", color: "#2e8b57", value: { $0.ok }),
        Series(label: "ok, Connection: close", color: "#74b9e8", value: { $0.okClose }),
        Series(label: "unanswered", color: "#d62728", value: { $0.unanswered }),
        Series(label: "truncated", color: "#ff7f0e", value: { $0.truncated }),
        Series(label: "timeout", color: "#8c2d04", value: { $0.timeout }),
        Series(label: "error", color: "#e6b800", value: { $0.error }),
        Series(label: "refused", color: "#9e9e9e", value: { $0.refused }),
    ]

    /// The chart of a drill's result, from one second before the signal to the end.
    static func render(_ result: DrillResult) -> String {
        let summary = result.summary
        let title = "Shutdown drill: GET \(result.options.path), \(result.options.connections) connections, SIGTERM under load"
        var subtitle = "\(summary.ok) ok (\(summary.okClose) with Connection: close) · \(summary.lost) lost"
        subtitle += " (\(summary.unanswered) unanswered, \(summary.truncated) truncated, \(summary.timeout) timeout, \(summary.error) error)"
        subtitle += " · \(summary.refused) refused"
        if let milliseconds = result.exitMilliseconds {
            subtitle += " · exit \(result.exit.code.map { "\($0)" } ?? "n/a") after \(fixed(milliseconds, digits: 0)) ms"
        }
        return render(timeline: result.timeline, exitMilliseconds: result.exitMilliseconds,
                      title: title, subtitle: subtitle)
    }

    static func render(timeline: Timeline, exitMilliseconds: Double?, title: String, subtitle: String,
                       secondsBefore: Double = 1, width: Double = 900, height: Double = 400) -> String {
        // The plot area, leaving room for the title above and the axis labels and legend below.
        let left = 64.0, right = width - 16, top = 62.0, bottom = height - 78
        let plotWidth = right - left, plotHeight = bottom - top

        let bucketMilliseconds = Double(timeline.bucketNanoseconds) / 1_000_000
        var range = timeline.indices(fromSecondsBeforeSignal: secondsBefore)
        if let exitMilliseconds {
            // Keep the exit line on the chart even if nothing happened after it.
            let exitIndex = Int((exitMilliseconds / bucketMilliseconds).rounded(.down))
            range = min(range.lowerBound, exitIndex)...max(range.upperBound, exitIndex)
        }
        let startMilliseconds = Double(range.lowerBound) * bucketMilliseconds
        let spanMilliseconds = Double(range.count) * bucketMilliseconds
        let x = { (milliseconds: Double) in left + (milliseconds - startMilliseconds) / spanMilliseconds * plotWidth }

        let peak = range.map { timeline.counts(at: $0).total }.max() ?? 0
        let (yStep, yTicks) = yAxis(peak: peak)
        let yMax = Double(yStep * yTicks)
        let y = { (value: Double) in bottom - value / yMax * plotHeight }

        var svg = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(n(width))" height="\(n(height))" \
        viewBox="0 0 \(n(width)) \(n(height))" font-family="Helvetica, Arial, sans-serif" font-size="11">

        """
        svg += "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n"
        svg += "<text x=\"\(n(left))\" y=\"22\" font-size=\"15\" font-weight=\"bold\">\(escape(title))</text>\n"
        svg += "<text x=\"\(n(left))\" y=\"40\" font-size=\"12\" fill=\"#333333\">\(escape(subtitle))</text>\n"

        // Horizontal grid and the y axis labels.
        for step in 0...yTicks {
            let value = Double(step * yStep)
            let lineY = y(value)
            svg += "<line x1=\"\(n(left))\" y1=\"\(n(lineY))\" x2=\"\(n(right))\" y2=\"\(n(lineY))\" stroke=\"#e5e5e5\"/>\n"
            svg += "<text x=\"\(n(left - 6))\" y=\"\(n(lineY + 4))\" text-anchor=\"end\">\(step * yStep)</text>\n"
        }

        // The bars. Each bucket's classes stack from the axis up.
        let barWidth = plotWidth / Double(range.count)
        let gap = barWidth > 4 ? 1.0 : 0
        for index in range {
            let counts = timeline.counts(at: index)
            let barX = x(Double(index) * bucketMilliseconds) + gap / 2
            var stacked = 0.0
            for item in series {
                let value = Double(item.value(counts))
                guard value > 0 else { continue }
                let y0 = y(stacked + value), y1 = y(stacked)
                svg += "<rect x=\"\(n(barX))\" y=\"\(n(y0))\" width=\"\(n(barWidth - gap))\" height=\"\(n(max(y1 - y0, 0.5)))\" fill=\"\(item.color)\"/>\n"
                stacked += value
            }
            // Failures are often a handful among thousands of successes, too thin to see as bar
            // segments, so a bucket with any gets a red marker and its count above the bar.
            if counts.failures > 0 {
                let centerX = barX + (barWidth - gap) / 2
                let tipY = y(stacked) - 3
                svg += "<path d=\"M\(n(centerX - 4)),\(n(tipY - 7)) L\(n(centerX + 4)),\(n(tipY - 7)) L\(n(centerX)),\(n(tipY)) Z\" fill=\"#d62728\"/>\n"
                svg += "<text x=\"\(n(centerX))\" y=\"\(n(tipY - 10))\" text-anchor=\"middle\" fill=\"#d62728\" font-weight=\"bold\">\(counts.failures)</text>\n"
            }
        }

        // Axes.
        svg += "<line x1=\"\(n(left))\" y1=\"\(n(bottom))\" x2=\"\(n(right))\" y2=\"\(n(bottom))\" stroke=\"#333333\"/>\n"
        svg += "<line x1=\"\(n(left))\" y1=\"\(n(top))\" x2=\"\(n(left))\" y2=\"\(n(bottom))\" stroke=\"#333333\"/>\n"
        let tickMilliseconds = tickStep(spanMilliseconds: spanMilliseconds)
        var tick = (startMilliseconds / tickMilliseconds).rounded(.up) * tickMilliseconds
        let tickDigits = tickMilliseconds >= 1000 ? 0 : (tickMilliseconds >= 100 ? 1 : (tickMilliseconds >= 10 ? 2 : 3))
        while tick <= startMilliseconds + spanMilliseconds + 0.001 {
            let tickX = x(tick)
            svg += "<line x1=\"\(n(tickX))\" y1=\"\(n(bottom))\" x2=\"\(n(tickX))\" y2=\"\(n(bottom + 5))\" stroke=\"#333333\"/>\n"
            svg += "<text x=\"\(n(tickX))\" y=\"\(n(bottom + 18))\" text-anchor=\"middle\">\(fixed(tick / 1000, digits: tickDigits))</text>\n"
            tick += tickMilliseconds
        }
        svg += "<text x=\"\(n(left + plotWidth / 2))\" y=\"\(n(bottom + 36))\" text-anchor=\"middle\">time relative to SIGTERM (s)</text>\n"
        let yLabelX = 16.0, yLabelY = top + plotHeight / 2
        svg += "<text x=\"\(n(yLabelX))\" y=\"\(n(yLabelY))\" text-anchor=\"middle\" transform=\"rotate(-90 \(n(yLabelX)) \(n(yLabelY)))\">"
            + "requests per \(escape(GoDuration(nanoseconds: timeline.bucketNanoseconds).description)) bucket</text>\n"

        // The signal and the exit. Labels sit on either side of their lines so that the two
        // stay legible when the exit follows the signal within a bucket or two.
        let signalX = x(0)
        svg += "<line x1=\"\(n(signalX))\" y1=\"\(n(top - 6))\" x2=\"\(n(signalX))\" y2=\"\(n(bottom))\" stroke=\"#000000\" stroke-width=\"1.5\" stroke-dasharray=\"5,3\"/>\n"
        svg += "<text x=\"\(n(signalX - 4))\" y=\"\(n(top - 8))\" text-anchor=\"end\" font-weight=\"bold\">SIGTERM</text>\n"
        if let exitMilliseconds {
            let exitX = x(exitMilliseconds)
            svg += "<line x1=\"\(n(exitX))\" y1=\"\(n(top - 6))\" x2=\"\(n(exitX))\" y2=\"\(n(bottom))\" stroke=\"#7b1fa2\" stroke-width=\"1.5\"/>\n"
            svg += "<text x=\"\(n(exitX + 4))\" y=\"\(n(top - 8))\" fill=\"#7b1fa2\" font-weight=\"bold\">exit (\(fixed(exitMilliseconds, digits: 0)) ms)</text>\n"
        }

        // The legend, in one row under the axis title.
        var legendX = left
        let legendY = height - 18
        for item in series {
            svg += "<rect x=\"\(n(legendX))\" y=\"\(n(legendY - 9))\" width=\"10\" height=\"10\" fill=\"\(item.color)\"/>\n"
            svg += "<text x=\"\(n(legendX + 14))\" y=\"\(n(legendY))\">\(escape(item.label))</text>\n"
            // Helvetica at 11 px averages about 6 px a character.
            legendX += 14 + Double(item.label.count) * 6 + 16
        }
        svg += "</svg>\n"
        return svg
    }

    /// Text and attribute values escaped for XML, so a path like `/a?x=1&y=<2>` cannot break
    /// the document.
    static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(character)
            }
        }
        return out
    }

    /// The y axis: a step of 1, 2 or 5 × 10^k and the fewest such steps (at most 6) that reach
    /// `peak`, so the tallest bar fills most of the height.
    static func yAxis(peak: Int) -> (step: Int, ticks: Int) {
        let peak = max(peak, 1)
        var magnitude = 1
        while true {
            for factor in [1, 2, 5] {
                let step = factor * magnitude
                let ticks = (peak + step - 1) / step
                if ticks <= 6 { return (step, max(ticks, 1)) }
            }
            magnitude *= 10
        }
    }

    /// A tick spacing (ms) of 1, 2 or 5 × 10^k giving at most about 12 ticks over the span.
    static func tickStep(spanMilliseconds: Double) -> Double {
        var magnitude = 1.0
        while true {
            for factor in [1.0, 2.0, 5.0] where spanMilliseconds / (factor * magnitude) <= 12 {
                return factor * magnitude
            }
            magnitude *= 10
        }
    }

    /// Coordinates with one decimal: enough for a 900 px chart, and a compact file.
    private static func n(_ value: Double) -> String {
        fixed(value, digits: 1)
    }
}
