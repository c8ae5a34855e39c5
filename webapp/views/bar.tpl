<meter class="bar" min="0" max="1" low="{{threshold}}" high="{{threshold}}" optimum="0" value="{{probability}}" title="probability of toxic">{{'%.3f' % probability}}</meter>
