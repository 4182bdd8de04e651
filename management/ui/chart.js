// A small line chart on a canvas: message rates over time, one line per
// series, newest sample on the right.
"use strict";

const Chart = {
  colours: ["#2b6cb0", "#c05621", "#2f855a", "#805ad5"],
  draw(canvas, series) {
    const context = canvas.getContext("2d");
    const { width, height } = canvas;
    context.clearRect(0, 0, width, height);
    const values = series.flatMap((s) => s.points);
    const max = Math.max(1, ...values);
    context.font = "11px sans-serif";
    context.fillStyle = "#666";
    context.fillText(max.toFixed(1) + "/s", 4, 12);
    series.forEach((s, index) => {
      const colour = this.colours[index % this.colours.length];
      context.strokeStyle = colour;
      context.beginPath();
      const step = s.points.length > 1 ? (width - 10) / (s.points.length - 1) : 0;
      s.points.forEach((value, i) => {
        const x = 5 + i * step;
        const y = height - 5 - (value / max) * (height - 20);
        if (i === 0) context.moveTo(x, y);
        else context.lineTo(x, y);
      });
      context.stroke();
      context.fillStyle = colour;
      context.fillText(s.name, 60 + index * 110, 12);
    });
  },
};
