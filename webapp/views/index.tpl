% rebase('layout.tpl', title='Toxic comment classifier')
% verdicts = {'toxic': 'Toxic', 'not_toxic': 'Not toxic'}
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
    % if model_count > 1:
    <button id="compare" class="secondary" type="submit" name="mode" value="compare">Compare all {{model_count}} models</button>
    % end
  </div>
</form>
% if result:
<section id="result" class="result {{result['label']}}">
  <p id="verdict" class="verdict" data-label="{{result['label']}}">{{verdicts[result['label']]}}</p>
  <p class="probability">Probability of toxic: <strong id="probability">{{'%.3f' % result['toxic_probability']}}</strong></p>
  % include('bar.tpl', probability=result['toxic_probability'], threshold=model.threshold)
  <p class="meta">Threshold <span id="threshold">{{'%.3f' % model.threshold}}</span> &middot; model <span id="model">{{model.name}}</span></p>
  % if explanation:
  <h2 class="why">Why: what each word does to the probability</h2>
  <div id="explanation" class="explained" data-model="{{model.name}}">
  % include('explanation.tpl', pieces=explanation)
  </div>
  % include('legend.tpl')
  % end
  <p class="meta">You wrote:</p>
  <blockquote id="submitted-text">{{text}}</blockquote>
</section>
% end
% if explain_note:
<p id="explain-note" class="meta">{{explain_note}}</p>
% end
% if comparison:
<section id="comparison" class="result">
  <table>
    <thead><tr><th>Model</th><th>Verdict</th><th>P(toxic)</th><th></th><th>Threshold</th></tr></thead>
    <tbody>
    % for predictor, prediction, _ in comparison:
      <tr data-model="{{predictor.name}}" data-label="{{prediction['label']}}">
        <td>{{predictor.name}}{{' (default)' if predictor is model else ''}}</td>
        <td class="{{prediction['label']}}">{{verdicts[prediction['label']]}}</td>
        <td class="number">{{'%.3f' % prediction['toxic_probability']}}</td>
        <td>
          % include('bar.tpl', probability=prediction['toxic_probability'], threshold=predictor.threshold)
        </td>
        <td class="number">{{'%.3f' % predictor.threshold}}</td>
      </tr>
    % end
    </tbody>
  </table>
  % if not explain_note:
  <h2 class="why">Why: what each word does to each model's probability</h2>
  <div id="explanations">
  % for predictor, _, pieces in comparison:
    <div class="explained" data-model="{{predictor.name}}">
      <span class="model-name">{{predictor.name}}</span>
      % include('explanation.tpl', pieces=pieces)
    </div>
  % end
  </div>
  % include('legend.tpl')
  % end
  <p class="meta">You wrote:</p>
  <blockquote id="submitted-text">{{text}}</blockquote>
</section>
% end
<section class="examples">
  <h2>Try an example</h2>
  % for example in examples:
  <form method="post" action="/classify" accept-charset="utf-8">
    <input type="hidden" name="text" value="{{example}}">
    <button class="example" type="submit" name="mode" value="single">{{example}}</button>
  </form>
  % end
</section>
