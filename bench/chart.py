"""The benchmark's chart: one horizontal bar per comparison, tern's ratio to its peer (higher is
better), green where it meets its target, with the target marked and the method written under it."""


def svg_chart(ratios, stamp, machine, command, args, server_cpu, client_cpu):
    """A horizontal bar per comparison (label, ratio, target); rates are tern/peer, latencies and
    memory peer/tern, so that higher is always better for tern."""
    def esc(text):
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    label_width, bar_width, row_height, top = 330, 420, 34, 40
    scale_max = max(2.0, max(r for _, r, _ in ratios) * 1.1)
    height = top + row_height * len(ratios) + 90
    width = label_width + bar_width + 80
    x = lambda value: label_width + bar_width * min(value, scale_max) / scale_max
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="13">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="10" y="24" font-size="16" font-weight="bold">tern against its peers (higher is better for tern; | marks the target)</text>',
    ]
    for index, (case, ratio, target) in enumerate(ratios):
        y = top + index * row_height
        color = "#2f855a" if ratio >= target else "#c53030"
        parts += [
            f'<text x="10" y="{y + 20}">{esc(case)}</text>',
            f'<rect x="{label_width}" y="{y + 6}" width="{x(ratio) - label_width:.1f}" height="20" fill="{color}"/>',
            f'<line x1="{x(target):.1f}" y1="{y + 2}" x2="{x(target):.1f}" y2="{y + 30}" stroke="black" stroke-width="2"/>',
            f'<text x="{x(ratio) + 6:.1f}" y="{y + 21}">{ratio:.2f}</text>',
        ]
    base = top + row_height * len(ratios) + 20
    parts += [
        f'<line x1="{x(1.0):.1f}" y1="{top}" x2="{x(1.0):.1f}" y2="{base - 14}" stroke="#999" stroke-dasharray="4"/>',
        f'<text x="10" y="{base + 4}">{esc(stamp)}; {esc(machine)}</text>',
        f'<text x="10" y="{base + 24}">server on CPU {server_cpu} (1 worker, defaults), wrk -t1 / oha on CPU {client_cpu}; '
        f'{args.warmup} s warm-up, median of {args.runs} x {args.duration} s</text>',
        f'<text x="10" y="{base + 44}">command: {esc(command)}</text>',
        "</svg>",
    ]
    return "\n".join(parts) + "\n"
