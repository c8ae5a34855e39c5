% rebase('layout.tpl', title='Toxic comment classifier')
% text, verdicts, explanation, note, error = get('text', ''), get('verdicts', {}), get('explanation'), get('note'), get('error')
% shown = {'toxic': 'Toxic', 'not_toxic': 'Not toxic'}
<p class="intro">The model gives the probability that a comment is toxic (insulting). At or above
the threshold chosen on validation data, the verdict is <em>toxic</em>.</p>
% if error:
<p id="error" class="error" role="alert">{{error}}</p>
% end
<form class="classify" method="post" action="/classify" accept-charset="utf-8">
  <label for="text">Comment</label>
  <textarea id="text" name="text" rows="5" maxlength="5000" placeholder="Type or paste a comment">{{text}}</textarea>
  <div class="actions">
    <button id="classify" type="submit" name="mode" value="single">Classify</button>
    % if len(predictors) > 1:
    <button id="compare" class="secondary" type="submit" name="mode" value="compare">Compare all {{len(predictors)}} models</button>
    % end
  </div>
</form>
% if len(verdicts) == 1:
% result, model = verdicts[default], predictors[default]
<section id="result" class="result {{result['label']}}">
  <p id="verdict" class="verdict" data-label="{{result['label']}}">{{shown[result['label']]}}</p>
  <p class="probability">Probability of toxic: <strong id="probability">{{'%.3f' % result['toxic_probability']}}</strong></p>
  % include('bar.tpl', probability=result['toxic_probability'], threshold=model.threshold)
  <p class="meta">Threshold <span id="threshold">{{'%.3f' % model.threshold}}</span> &middot; model <span id="model">{{default}}</span></p>
  % include('explanation.tpl')
  <p class="meta">You wrote:</p>
  <blockquote id="submitted-text">{{text}}</blockquote>
</section>
% elif verdicts:
<section id="comparison" class="result">
  <table>
    <thead><tr><th>Model</th><th>Verdict</th><th>P(toxic)</th><th></th><th>Threshold</th></tr></thead>
    <tbody>
    % for name, prediction in verdicts.items():
      <tr data-model="{{name}}" data-label="{{prediction['label']}}">
        <td>{{name}}{{' (served)' if name == default else ''}}</td>
        <td class="{{prediction['label']}}">{{shown[prediction['label']]}}</td>
        <td class="number">{{'%.3f' % prediction['toxic_probability']}}</td>
        <td>
          % include('bar.tpl', probability=prediction['toxic_probability'], threshold=predictors[name].threshold)
        </td>
        <td class="number">{{'%.3f' % predictors[name].threshold}}</td>
      </tr>
    % end
    </tbody>
  </table>
  % include('explanation.tpl')
  <p class="meta">You wrote:</p>
  <blockquote id="submitted-text">{{text}}</blockquote>
</section>
% end
% if note:
<p id="explain-note" class="meta">{{note}}</p>
% end
<section class="examples">
  <h2>Try an example</h2>
  <%
  examples = ("Thank you for the thoughtful reply, I learned something today.",
              "You are a complete idiot and everyone here knows it.",
              "I disagree with the article, but the author makes a fair point about costs.",
              "Shut up, nobody cares what a pathetic loser like you thinks.")
  %>
  % for example in examples:
  <form method="post" action="/classify" accept-charset="utf-8">
    <input type="hidden" name="text" value="{{example}}">
    <button class="example" type="submit" name="mode" value="single">{{example}}</button>
  </form>
  % end
</section>
