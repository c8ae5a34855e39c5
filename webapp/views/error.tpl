% rebase('layout.tpl', title=status)
<section class="error-page">
  <h1>{{status}}</h1>
  <p id="error" class="error" role="alert">{{message}}</p>
  <p><a href="/">Back to the classifier</a></p>
</section>
