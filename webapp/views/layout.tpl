<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{title}}</title>
<link rel="stylesheet" href="/style.css">
</head>
<body>
<header><a class="brand" href="/">Toxic comment classifier</a></header>
<main>
{{!base}}
</main>
<footer>Programs can ask <code>POST /api/predict</code> with <code>{"text": "..."}</code>.</footer>
</body>
</html>
